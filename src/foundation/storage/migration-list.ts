/** Every migration of each dialect, by name, in order (src/foundation/storage/migrations/). */
import type { Migration } from 'kysely';
import type { Dialect } from './types.ts';
import * as sqlite001 from './migrations/sqlite/001_initial.ts';
import * as postgres001 from './migrations/postgres/001_initial.ts';
import * as sqlite002 from './migrations/sqlite/002_one_active_organization_key.ts';
import * as postgres002 from './migrations/postgres/002_one_active_organization_key.ts';
import * as sqlite003 from './migrations/sqlite/003_relationships_by_patient.ts';
import * as postgres003 from './migrations/postgres/003_relationships_by_patient.ts';
import * as sqlite004 from './migrations/sqlite/004_audit_tree.ts';
import * as postgres004 from './migrations/postgres/004_audit_tree.ts';
import * as sqlite005 from './migrations/sqlite/005_roster_capabilities_and_key_blocks.ts';
import * as postgres005 from './migrations/postgres/005_roster_capabilities_and_key_blocks.ts';
import * as sqlite006 from './migrations/sqlite/006_console_operators.ts';
import * as postgres006 from './migrations/postgres/006_console_operators.ts';
import * as sqlite007 from './migrations/sqlite/007_audit_by_relationship.ts';
import * as postgres007 from './migrations/postgres/007_audit_by_relationship.ts';

export const MIGRATIONS: Record<Dialect, Record<string, Migration>> = {
  sqlite: {
    '001_initial': sqlite001,
    '002_one_active_organization_key': sqlite002,
    '003_relationships_by_patient': sqlite003,
    '004_audit_tree': sqlite004,
    '005_roster_capabilities_and_key_blocks': sqlite005,
    '006_console_operators': sqlite006,
    '007_audit_by_relationship': sqlite007,
  },
  postgres: {
    '001_initial': postgres001,
    '002_one_active_organization_key': postgres002,
    '003_relationships_by_patient': postgres003,
    '004_audit_tree': postgres004,
    '005_roster_capabilities_and_key_blocks': postgres005,
    '006_console_operators': postgres006,
    '007_audit_by_relationship': postgres007,
  },
};
