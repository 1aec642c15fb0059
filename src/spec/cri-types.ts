/**
 * The CRI v1 messages the converter reads, as plain data (snake_case as in api.proto, the shape
 * @grpc/proto-loader gives with keepCase, enums as strings, int64 as decimal strings or numbers).
 * Only the fields nspod uses are listed; the wire format lives in proto/cri/api.proto.
 */
export type Int64 = string | number;

export interface CriKeyValue {
  key: string;
  value: string;
}

export interface CriNamespaceOption {
  network?: string;
  pid?: string;
  ipc?: string;
  target_id?: string;
}

export interface CriSecurityProfile {
  profile_type?: string;
  localhost_ref?: string;
}

export interface CriInt64Value {
  value: Int64;
}

export interface CriLinuxContainerResources {
  cpu_period?: Int64;
  cpu_quota?: Int64;
  cpu_shares?: Int64;
  memory_limit_in_bytes?: Int64;
  oom_score_adj?: Int64;
  cpuset_cpus?: string;
  cpuset_mems?: string;
  hugepage_limits?: Array<{ page_size: string; limit: Int64 }>;
  unified?: Record<string, string>;
  memory_swap_limit_in_bytes?: Int64;
}

export interface CriPodSandboxConfig {
  metadata?: { name?: string; uid?: string; namespace?: string; attempt?: number } | null;
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] } | null;
  port_mappings?: Array<{ protocol?: string; container_port?: number; host_port?: number; host_ip?: string }>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: CriNamespaceOption | null;
      privileged?: boolean;
      seccomp?: CriSecurityProfile | null;
    } | null;
    sysctls?: Record<string, string>;
    resources?: CriLinuxContainerResources | null;
  } | null;
}

export interface CriContainerConfig {
  metadata?: { name?: string; attempt?: number } | null;
  image?: { image?: string; user_specified_image?: string } | null;
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: CriKeyValue[];
  mounts?: Array<{
    container_path?: string;
    host_path?: string;
    readonly?: boolean;
    propagation?: string;
    image?: { image?: string } | null;
  }>;
  devices?: Array<{ container_path?: string; host_path?: string; permissions?: string }>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: {
    resources?: CriLinuxContainerResources | null;
    security_context?: {
      capabilities?: {
        add_capabilities?: string[];
        drop_capabilities?: string[];
        add_ambient_capabilities?: string[];
      } | null;
      privileged?: boolean;
      namespace_options?: CriNamespaceOption | null;
      run_as_user?: CriInt64Value | null;
      run_as_group?: CriInt64Value | null;
      run_as_username?: string;
      readonly_rootfs?: boolean;
      supplemental_groups?: Int64[];
      no_new_privs?: boolean;
      masked_paths?: string[];
      readonly_paths?: string[];
      seccomp?: CriSecurityProfile | null;
      seccomp_profile_path?: string;
    } | null;
  } | null;
  stop_signal?: string;
}
