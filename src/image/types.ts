/** OCI image-spec shapes (the subset nspod reads and writes) and what the store reports. */

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** containerd's export puts the full name here and only the tag in REF_NAME */
export const CONTAINERD_NAME = 'io.containerd.image.name';

export const isIndexType = (t: string | undefined): boolean =>
  t === MediaType.ociIndex || t === MediaType.dockerManifestList;
export const isManifestType = (t: string | undefined): boolean =>
  t === MediaType.ociManifest || t === MediaType.dockerManifest;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (Docker's capitalised keys, as in the OCI spec). */
export interface ImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: ImageRuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: { created?: string; created_by?: string; comment?: string; empty_layer?: boolean }[];
}

/** One image as the store lists it. */
export interface ImageInfo {
  /** the config digest, `sha256:<hex>` */
  id: string;
  /** full normalized references, e.g. `localhost/busybox:latest`; empty for a dangling image */
  names: string[];
  manifestDigest: string;
  /** from the config, RFC 3339 */
  created?: string;
  /** bytes of the blobs: config + layers as stored */
  size: number;
  /** `rootfs.diff_ids` of the config, bottom-most first */
  diffIds: string[];
  /** the manifest's layer descriptors, bottom-most first */
  layers: Descriptor[];
}

/** The architecture name OCI uses for this node's CPU. */
export function ociArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' };
  return map[arch] ?? arch;
}
