/**
 * Image references, normalised the way docker does: `busybox` → `docker.io/library/busybox:latest`,
 * `localhost/busybox` → `localhost/busybox:latest`, `reg:5000/a/b@sha256:…` keeps its digest.
 */
import { invalidArgument } from '../errors/index.js';

export interface Reference {
  /** registry host, with port if any: `docker.io`, `localhost`, `reg:5000` */
  domain: string;
  /** repository path below the domain: `library/busybox` */
  path: string;
  tag?: string;
  /** `sha256:<hex>` */
  digest?: string;
  /** `domain/path` */
  repository: string;
  /** the normalized full reference: repository, `:tag` (latest unless a digest is given), `@digest` */
  full: string;
  /** false when the domain was implied (docker.io), so podman-style short-name lookup applies */
  explicitDomain: boolean;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const DOCKER_HUB = 'docker.io';

function bad(s: string, why: string): never {
  throw invalidArgument(`invalid image reference "${s}": ${why}`);
}

/** Parses and normalises a reference; throws INVALID_ARGUMENT naming what is wrong. */
export function parseReference(s: string): Reference {
  if (s === '') bad(s, 'it is empty');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) bad(s, `digest "${digest}" is not sha256:<64 hex>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) bad(s, `tag "${tag}" is not valid`);
  }
  if (rest === '') bad(s, 'the repository name is empty');
  if (/^[0-9a-f]{64}$/.test(rest)) bad(s, 'a 64-hex repository name is taken for an image id');
  let domain = DOCKER_HUB;
  let path = rest;
  let explicitDomain = false;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (!DOMAIN.test(first)) bad(s, `registry "${first}" is not a valid host name`);
      domain = first === 'index.docker.io' ? DOCKER_HUB : first;
      path = rest.slice(slash + 1);
      explicitDomain = true;
    }
  }
  for (const c of path.split('/')) {
    if (c !== c.toLowerCase()) bad(s, 'the repository name must be lowercase');
    if (!COMPONENT.test(c)) bad(s, `"${c}" is not a valid name component`);
  }
  if (domain === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  const repository = `${domain}/${path}`;
  if (repository.length > 255) bad(s, 'the name is longer than 255 characters');
  if (tag === undefined && digest === undefined) tag = 'latest';
  const full = repository + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
  return {
    domain,
    path,
    repository,
    full,
    explicitDomain,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** The normalized full form of a reference string. */
export function normalizeReference(s: string): string {
  return parseReference(s).full;
}

/** The path of a reference as a user would type it on docker.io: `library/busybox` → `busybox`. */
export function shortPath(ref: Reference): string {
  return ref.domain === DOCKER_HUB && ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path;
}
