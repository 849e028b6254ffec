/** The PostgreSQL store against the shared conformance suite, on a throwaway server (skipped where none can run). */
import { postgresBackend } from '../../test/support/store-backends.ts';
import { runStoreConformance } from './conformance.ts';

runStoreConformance('postgres', postgresBackend());
