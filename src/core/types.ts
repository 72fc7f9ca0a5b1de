// Domain types shared by the engine, the policy and every provider. Plain serialisable data only,
// so a provider can later move out of process. Prices: quotes are USD per GPU-hour; a node's and a
// lease's `pricePerHour` is for the whole node.

export type CapacityType = 'spot' | 'on-demand';
export type CapacityPreference = CapacityType | 'auto';
export type WorkloadClass = 'training' | 'batch' | 'dev' | 'serving' | 'realtime';

/** A machine that runs workloads. `id` is unique within its provider instance. */
export interface NodeInfo {
  id: string;
  /** Provider instance name (the key under `providers:` in the spec). */
  provider: string;
  gpuModel: string;
  gpus: number;
  /** GPUs the node itself reports free (nvidia-smi); the planner also nets out its own placements. */
  gpusFree?: number;
  capacity: CapacityType;
  zone?: string;
  /** USD per hour for the whole node. */
  pricePerHour: number;
  state: 'ready' | 'provisioning' | 'draining' | 'terminated' | 'unknown';
  /** Set when the node came from a lease (market capacity). */
  leaseId?: string;
  pool?: string;
  labels?: Record<string, string>;
  /** Provider-specific facts (host, checkpoint dir, cloud), shown by `spotfleet nodes`. */
  meta?: Record<string, string | number | boolean>;
}

/** A workload instance as a runtime reports it (a process, a container). */
export interface WorkloadInstance {
  /** Runtime id: a process record id, a container id. */
  id: string;
  provider: string;
  node: string;
  fleet: string;
  workload: string;
  state: 'running' | 'exited' | 'unknown';
  /** ISO-8601. */
  startedAt: string;
  exitCode?: number;
  /** ISO-8601, once it has exited, when the runtime knows. */
  endedAt?: string;
  gpus: number;
  /** Hash of the workload spec it was started from; a change means the workload must be replaced. */
  specHash?: string;
  labels: Record<string, string>;
}

/** A spot / on-demand price for a GPU model in a zone, per GPU-hour. */
export interface PriceQuote {
  provider: string;
  gpuModel: string;
  capacity: CapacityType;
  zone?: string;
  pricePerGpuHour: number;
  available: boolean;
  /** Expected preemptions per hour on this capacity, when the market or trace knows. */
  preemptionRatePerHour?: number;
  /** ISO-8601 time the quote is for (market time; for `sim`, the simulated time). */
  at: string;
  /** Where the price comes from (`EC2 spot price history`, `AWS Price List API`, a dated table standing in). */
  source?: string;
}

/** Capacity offered on a marketplace (molt) that a bid can take. */
export interface Offer {
  id: string;
  provider: string;
  gpuModel: string;
  minGpus: number;
  maxGpus?: number;
  capacity: CapacityType;
  zone?: string;
  /** The highest price per GPU-hour the seller accepts bids up to / the asking price. */
  pricePerGpuHour: number;
  maxPricePerGpuHour?: number;
}

/** Capacity that spotfleet acquired and pays for, until released. */
export interface Lease {
  id: string;
  provider: string;
  pool: string;
  capacity: CapacityType;
  gpuModel: string;
  gpus: number;
  zone?: string;
  /** USD per hour for the whole lease. */
  pricePerHour: number;
  /** ISO-8601. */
  acquiredAt: string;
  expiresAt?: string;
  state: 'pending' | 'active' | 'preempting' | 'terminated' | 'released';
  /** The node this lease materialised as, once it is up (for bought VMs: reachable and verified). */
  node?: string;
  labels?: Record<string, string>;
  /** Why the lease ended without a release (a VM that never became ready, a host key that did not match). */
  error?: string;
}

/**
 * How spotfleet reaches the nodes a pool's leases become (`pools[].node`), with defaults applied.
 * The capacity provider injects the login key and a host key it generated at launch, and calls the
 * lease a node only once SSH answers with that host key and docker and nvidia-smi respond.
 */
export interface NodeAccess {
  via: 'ssh';
  /** Login user. Default `root`. */
  user: string;
  /** Private key spotfleet logs in with (its public key is injected at launch); relative to the spec folder or `~/`. */
  identityFile: string;
  /** Default 22. */
  port: number;
  /** How workloads run on the node. */
  runtime: 'docker';
  /** Which address of the VM to reach it at: `public`, `private`, or `auto` (public when it has one). */
  address: 'public' | 'private' | 'auto';
  /** A lease that is not a ready node this long after launch is terminated. Default 10 min. */
  readyTimeoutMs: number;
  /** Machine image for this pool (AMI id, GCE image, Azure image URN); default the provider's. */
  image?: string;
  /** Checkpoint folder on the node. Default /srv/spotfleet/checkpoints. */
  checkpointRoot?: string;
  /** The node's docker has the NVIDIA container runtime: containers get `--gpus`. */
  nvidiaRuntime?: boolean;
  /** Metadata base URL as the node reaches it; default the cloud's documented address. */
  metadataUrl?: string;
}

export type NoticeKind = 'preemption' | 'rebalance' | 'maintenance' | 'termination';

/** An eviction / preemption / rebalance / maintenance warning for a node. */
export interface Notice {
  /** Stable id, so the same notice seen twice is handled once. */
  id: string;
  provider: string;
  node: string;
  /** Where it came from: aws, gcp, azure, sim, local. */
  source: string;
  kind: NoticeKind;
  /** The cloud's own word: terminate, stop, hibernate, Preempt, TERMINATE_ON_HOST_MAINTENANCE... */
  action?: string;
  /** ISO-8601: when the node goes away (or the event starts). */
  deadline: string;
  /** ISO-8601: when spotfleet first saw it. */
  receivedAt: string;
  /** Provider-specific data (event id for acknowledging, incarnation...). */
  detail?: Record<string, string | number | boolean>;
}

/** A checkpoint found on a node. */
export interface CheckpointInfo {
  node: string;
  workload: string;
  /** Path on the node (as the workload sees it after resume, for the resume variable). */
  path: string;
  /** ISO-8601 modification time. */
  mtime: string;
  sizeBytes: number;
}

/** One observation of the world, gathered by refresh. */
export interface Observed {
  /** ISO-8601. */
  at: string;
  nodes: NodeInfo[];
  workloads: WorkloadInstance[];
  leases: Lease[];
  prices: PriceQuote[];
  offers: Offer[];
  notices: Notice[];
  /** Parts that could not be read (a provider that failed, marked unknown rather than empty). */
  unknown: { provider: string; capability: string; error: string }[];
  /**
   * Spot availability seen so far per pool/zone (`pool/zone` → the policy's ZoneStats), carried from
   * one recorded observation to the next: the live history behind the expected up-time estimate.
   */
  zoneStats?: Record<string, unknown>;
}
