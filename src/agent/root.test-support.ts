/** Why a test that needs root, namespaces, nft and ping cannot run here (the test skips, printing it), or null. */
import { spawnSync } from 'node:child_process';
import { isRoot } from './exec.ts';

export function nftUnavailable(): string | null {
  if (!isRoot()) return 'needs root (network namespaces and nft)';
  for (const tool of ['nft', 'ip', 'ping']) if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  return null;
}
