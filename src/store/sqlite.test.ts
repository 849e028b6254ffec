/** The SQLite store against the shared conformance suite. */
import { sqliteBackend } from '../../test/support/store-backends.ts';
import { runStoreConformance } from './conformance.ts';

runStoreConformance('sqlite', sqliteBackend());
