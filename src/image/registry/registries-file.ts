/** Validation of registries.json (see config.ts for the format), with zod. */
import { z } from 'zod/v3';
import { invalidArgument, messageOf } from '../../errors/index.js';
import { DOCKER_HUB } from '../reference.js';
import type { RegistriesConfig } from './config.js';

const RegistryEntry = z
  .object({
    mirrors: z.array(z.string().min(1)).optional(),
    insecure: z.boolean().optional(),
    caFile: z.string().min(1).optional(),
  })
  .strict();

const RegistriesFile = z
  .object({
    search: z.array(z.string().min(1)).optional(),
    registries: z.record(z.string(), RegistryEntry).optional(),
  })
  .strict();

/** Parses the text of a registries.json (`file` only names it in errors). */
export function parseRegistriesConfig(text: string, file: string): RegistriesConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`registries config ${file}: not valid JSON: ${messageOf(e)}`, e);
  }
  const r = RegistriesFile.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw invalidArgument(`registries config ${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return { search: r.data.search ?? [DOCKER_HUB], registries: r.data.registries ?? {} };
}
