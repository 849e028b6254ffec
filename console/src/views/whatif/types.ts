/**
 * The answers of the what-if routes (src/server/routes/whatif.ts: `WhatIfShareV1`, and the admission answer of
 * src/server/admission.ts), as the console reads them. Written out here: the console imports no server module.
 */
import type { TrustState } from '../../../../src/api/types.ts';

export interface ShareAnswer {
  /** the policy allows it (their labels share a color) */
  allow: boolean;
  /** and they may talk right now (both hold a shared color among their effective colors) */
  now: boolean;
  reason: 'color_match' | 'no_common_color' | 'no_ste_component' | 'unknown_label' | 'isolated' | string;
  colors: string[];
  nowColors: string[];
  message: string;
  vms: { name: string; host: string | null; label: string | null; trust: TrustState; effectiveColors: string[]; isolated?: string }[];
}

export interface StartAnswer {
  allow: boolean;
  reason: string;
  details: {
    message: string;
    host: string;
    hostLabel: string | null;
    vm: string;
    label: string | null;
    policyVersion?: number;
    authorized?: { allow: boolean; reason: string; missing: string[] };
    start?: {
      allow: boolean;
      reason: string;
      blockers: { conflictSet: string; wall: string; runningLabel: string; runningWall: string; running: number }[];
    };
    standing?: { conflictSet: string; runningLabel: string; vms: string[] }[];
    running?: string[];
    resources: { kind: string; id: string; label: string | null; allow: boolean; reason?: string; answer?: { allow: boolean; reason: string; color: string } }[];
  };
}
