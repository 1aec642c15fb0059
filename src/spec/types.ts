/**
 * nspod's own model of a pod and its containers. Both front doors convert into it: Kubernetes
 * `v1.Pod` YAML (spec/kube.ts) and, later, CRI PodSandboxConfig/ContainerConfig. Nothing below
 * pod/ knows about YAML or gRPC; they all take these types.
 */

/** How a pod-level namespace is provided. `pod`: the sandbox's; `node`: the host's; `container`: the container's own. */
import type { Lifecycle, Probe } from './probe-types.js';

export type { Lifecycle, Probe } from './probe-types.js';

export type NamespaceMode = 'pod' | 'container' | 'node';

export interface PodNamespaces {
  /** pod (sandbox's pinned netns) or node (hostNetwork) */
  network: 'pod' | 'node';
  /** pod (sandbox's pinned ipc ns) or node (hostIPC) */
  ipc: 'pod' | 'node';
  /** container (default: each its own), pod (shareProcessNamespace) or node (hostPID) */
  pid: NamespaceMode;
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

export interface PortSpec {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface EnvVar {
  name: string;
  /** a literal value (may hold `$(VAR)` references); ignored when valueFrom is set */
  value: string;
  /** where the value comes from at container creation (see kube-volumes.ts) */
  valueFrom?: EnvVarSource;
}

export type EnvVarSource =
  | { configMapKeyRef: { name: string; key: string; optional: boolean } }
  | { secretKeyRef: { name: string; key: string; optional: boolean } }
  | { fieldRef: { fieldPath: string } }
  | { resourceFieldRef: { containerName?: string; resource: string; divisor: number } };

/** `envFrom`: every key of a ConfigMap or Secret becomes a variable `<prefix><key>`. */
export interface EnvFromSource {
  kind: 'configMap' | 'secret';
  name: string;
  prefix: string;
  optional: boolean;
}

export type MountPropagation = 'None' | 'HostToContainer' | 'Bidirectional';

export interface VolumeMount {
  /** the pod volume it mounts */
  name: string;
  /** absolute path inside the container */
  mountPath: string;
  readOnly: boolean;
  /** a relative path inside the volume to mount instead of its root */
  subPath?: string;
  propagation: MountPropagation;
}

export type HostPathType =
  '' | 'DirectoryOrCreate' | 'Directory' | 'FileOrCreate' | 'File' | 'Socket' | 'CharDevice' | 'BlockDevice';

/** One key of a ConfigMap/Secret projected to a file path relative to the volume. */
export interface KeyToPath {
  key: string;
  path: string;
  /** file mode (0-0777); default: the volume's defaultMode */
  mode?: number;
}

export type VolumeSource =
  | { emptyDir: { medium: '' | 'Memory'; sizeLimitBytes?: number } }
  | { hostPath: { path: string; type: HostPathType } }
  | { configMap: { name: string; items?: KeyToPath[]; defaultMode: number; optional: boolean } }
  | { secret: { secretName: string; items?: KeyToPath[]; defaultMode: number; optional: boolean } }
  | { persistentVolumeClaim: { claimName: string; readOnly: boolean } }
  | { downwardAPI: { items: DownwardAPIItem[]; defaultMode: number } };

/** A file of a downwardAPI volume: one pod field or container resource. */
export interface DownwardAPIItem {
  path: string;
  fieldRef?: { fieldPath: string };
  resourceFieldRef?: { containerName: string; resource: string; divisor: number };
  mode?: number;
}

export interface VolumeSpec {
  name: string;
  source: VolumeSource;
}

/** A ConfigMap or Secret given with the pod (same YAML file). Values are base64 so records stay JSON. */
export interface ConfigObject {
  kind: 'ConfigMap' | 'Secret';
  name: string;
  namespace: string;
  /** key → base64 of the value's bytes */
  data: Record<string, string>;
}

/** Resources in base units: bytes and milli-CPUs. */
export interface ResourceList {
  memoryBytes?: number;
  cpuMilli?: number;
}

export interface Resources {
  limits: ResourceList;
  requests: ResourceList;
}

export interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  privileged: boolean;
  capabilities: { add: string[]; drop: string[] };
  readOnlyRootFilesystem: boolean;
  /** false = set noNewPrivileges (the default is true, as Kubernetes; nspod sets noNewPrivileges unless privileged or this is true) */
  allowPrivilegeEscalation?: boolean;
}

export interface ContainerSpec {
  name: string;
  image: string;
  /** overrides the image's Entrypoint */
  command?: string[];
  /** overrides the image's Cmd */
  args?: string[];
  env: EnvVar[];
  workingDir?: string;
  ports: PortSpec[];
  resources: Resources;
  securityContext: SecurityContext;
  tty: boolean;
  stdin: boolean;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: Lifecycle;
  /** init containers only: `Always` makes it a native sidecar */
  restartPolicy?: 'Always';
  /** when to pull the image; unset = IfNotPresent (nspod's default, whatever the tag) */
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** pod volumes mounted into this container */
  volumeMounts?: VolumeMount[];
  /** variables taken from every key of ConfigMaps/Secrets (before `env`, which wins) */
  envFrom?: EnvFromSource[];
}

export interface HostAlias {
  ip: string;
  hostnames: string[];
}

/** The pod's resolver settings (Kubernetes dnsPolicy + dnsConfig). */
export interface DnsSpec {
  policy: 'ClusterFirst' | 'ClusterFirstWithHostNet' | 'Default' | 'None';
  nameservers: string[];
  searches: string[];
  options: Array<{ name: string; value?: string }>;
}

export interface PodSpec {
  name: string;
  namespace: string;
  /** metadata.uid when given; otherwise generated at creation */
  uid?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** defaults to the pod name */
  hostname: string;
  namespaces: PodNamespaces;
  restartPolicy: RestartPolicy;
  terminationGracePeriodSeconds: number;
  containers: ContainerSpec[];
  /** run one at a time to completion before `containers` (sidecars: restartPolicy Always, kept running) */
  initContainers?: ContainerSpec[];
  /** extra /etc/hosts entries */
  hostAliases?: HostAlias[];
  dns?: DnsSpec;
  volumes?: VolumeSpec[];
  /** ConfigMaps and Secrets that came with the pod (same file, same namespace) */
  configObjects?: ConfigObject[];
  /** for fieldRef spec.serviceAccountName (default "default") */
  serviceAccountName?: string;
}
