/**
 * Container options that only the CRI front door sets (spec/cri.ts): host mounts with
 * propagation, devices, seccomp, sysctls, masked/readonly paths, raw cgroup resources in kernel
 * units. The OCI config builder applies them last (oci/extras.ts). Pod YAML leaves them unset.
 */

export type MountPropagation = 'private' | 'rslave' | 'rshared';

export interface HostMount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  propagation: MountPropagation;
}

export interface DeviceMapping {
  containerPath: string;
  hostPath: string;
  /** cgroup permissions: a subset of `rwm` */
  permissions: string;
}

/** seccomp: the runtime's default profile, none, or a JSON profile file on the host */
export type SeccompProfile = { type: 'RuntimeDefault' } | { type: 'Unconfined' } | { type: 'Localhost'; path: string };

/** cgroup resources in kernel units; 0/absent means not set */
export interface RawResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitBytes?: number;
  memorySwapLimitBytes?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  /** cgroup v2 files → values */
  unified?: Record<string, string>;
}

export interface ContainerExtras {
  mounts?: HostMount[];
  devices?: DeviceMapping[];
  /** every device node of the host's /dev (CRI privileged containers) */
  hostDevices?: boolean;
  /** an image-style user (`name`, `uid`, `name:gid` …) that replaces the image's User */
  user?: string;
  supplementalGroups?: number[];
  /** replace the default masked / readonly paths when given */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  seccomp?: SeccompProfile;
  sysctls?: Record<string, string>;
  resources?: RawResources;
  oomScoreAdj?: number;
  ambientCapabilities?: string[];
}
