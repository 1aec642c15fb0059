/**
 * Registry: pull and push images over the OCI distribution API.
 *
 * - `pullImage(store, ref, opts)` resolves a docker-style reference (search registries for short
 *   names, mirrors first), fetches the manifest (a manifest list / index picks the platform),
 *   downloads layers in parallel with sha256+size verification, unpacks them and commits the
 *   image atomically; nothing half-written stays on failure;
 * - `pushImage(store, ref, opts)` uploads missing blobs (HEAD first) and then the manifest;
 * - `RegistryClient` is the per-registry HTTP client (auth challenges, token cache, retries);
 * - registries.json and the auth file (docker `config.json` format) are read by `config.ts`.
 */
export { pullImage, parsePlatform, selectPlatform } from './pull.js';
export type { PullEvent, PullOptions, PullResult, LayerPhase } from './pull.js';
export { pushImage, checkLogin } from './push.js';
export type { PushEvent, PushOptions, PushResult } from './push.js';
export { RegistryClient, parseWwwAuthenticate } from './client.js';
export type { Challenge, RegistryClientOptions, RetryOptions } from './client.js';
export { authFilePath, findCredentials, loadRegistriesConfig, removeCredentials, saveCredentials } from './config.js';
export type { Credentials, RegistriesConfig, RegistryEntry } from './config.js';
export { parseRegistriesConfig } from './registries-file.js';
