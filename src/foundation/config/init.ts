/**
 * Writing a config file: `neuron init`, and the development config that `neuron start` creates
 * when none exists. Written atomically (temporary file, then rename) with mode 0600, and never
 * over an existing file unless asked.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface InitialConfig {
  organization: { name: string; npi: string; type: string };
  data_dir: string;
  server: { host: string; port: number; public_url?: string };
  registry?: { enabled: boolean; url: string };
  discovery?: { enabled: boolean };
}

/** A development setup: synthetic organization, loopback only, no registry. */
export function developmentConfig(): InitialConfig {
  return {
    organization: { name: 'Development Practice', npi: '1245319599', type: 'practice' },
    data_dir: './data',
    server: { host: '127.0.0.1', port: 8600 },
    registry: { enabled: false, url: '' },
    discovery: { enabled: false },
  };
}

export function writeConfigFile(file: string, config: InitialConfig, options: { force?: boolean } = {}): void {
  if (existsSync(file) && !options.force) throw new Error(`${file} already exists; pass --force to replace it`);
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}
