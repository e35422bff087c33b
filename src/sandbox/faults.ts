import { ScimError } from "./errors.js";
import { seededRandom } from "../seeded-random.js";

export type FaultKind = "500" | "502" | "503" | "reset";

export const FAULT_KINDS: readonly FaultKind[] = ["500", "502", "503", "reset"];

/** A flaky SCIM side, on purpose: lets tests prove a client converges without duplicates. All fields optional. */
export interface SandboxFaults {
  /** 0..1 share of eligible requests answered with an injected failure. Default 0. */
  errorRate?: number;
  /** 0..1 share of the injected failures on writes that happen after the store was changed. Default 0. */
  afterWriteRate?: number;
  /** Also fault GETs; by default only POST/PATCH/PUT/DELETE are. */
  includeReads?: boolean;
  /** Picked from uniformly, per fault. Default ['500', '503', 'reset']. */
  kinds?: FaultKind[];
  /** Delay added before every answer, faulted or not. */
  latencyMs?: { min: number; max: number };
  /** Same seed and same request order → same faults. Default 1. */
  seed?: number;
}

/**
 * Thrown by the router in place of, or after, the real handling. It is a ScimError so that the usual error path
 * renders the body; `reset` has no answer at all, hence status 0 in the request log.
 */
export class InjectedFault extends ScimError {
  constructor(
    readonly kind: FaultKind,
    readonly afterWrite: boolean,
  ) {
    super(kind === "reset" ? 0 : Number(kind), "injected fault", undefined, kind === "503" ? { "Retry-After": "1" } : {});
    this.name = "InjectedFault";
  }
}

const DEFAULT_KINDS: readonly FaultKind[] = ["500", "503", "reset"];
const WRITE_METHODS = new Set(["POST", "PATCH", "PUT", "DELETE"]);

export class FaultInjector {
  private readonly errorRate: number;
  private readonly afterWriteRate: number;
  private readonly includeReads: boolean;
  private readonly kinds: readonly FaultKind[];
  private readonly latency: { min: number; max: number } | undefined;
  private readonly nextFault: () => number;
  // A stream of its own, so that turning latency on or off does not change which requests are faulted.
  private readonly nextLatency: () => number;

  constructor(faults: SandboxFaults) {
    this.errorRate = rate(faults.errorRate, "errorRate");
    this.afterWriteRate = rate(faults.afterWriteRate, "afterWriteRate");
    this.includeReads = faults.includeReads ?? false;
    this.kinds = [...(faults.kinds ?? DEFAULT_KINDS)];
    if (this.kinds.length === 0 || !this.kinds.every((kind) => FAULT_KINDS.includes(kind))) {
      throw new Error(`faults.kinds must be a non-empty list of ${FAULT_KINDS.join(", ")}, not ${JSON.stringify(faults.kinds)}`);
    }
    const latency = faults.latencyMs;
    if (latency && !(latency.min >= 0 && latency.max >= latency.min && Number.isFinite(latency.max))) {
      throw new Error(`faults.latencyMs must have 0 <= min <= max, not ${JSON.stringify(latency)}`);
    }
    this.latency = latency;
    const seed = faults.seed ?? 1;
    if (!Number.isSafeInteger(seed)) throw new Error(`faults.seed must be an integer, not ${seed}`);
    this.nextFault = seededRandom(seed);
    this.nextLatency = seededRandom(seed ^ 0x5bd1e995);
  }

  /**
   * Decides the fate of one authenticated request on /Users or /Groups. Only eligible requests draw from the
   * sequence, so reads interleaved with writes do not shift the writes' faults unless reads are faulted too.
   */
  decide(method: string): InjectedFault | undefined {
    const write = WRITE_METHODS.has(method);
    if (!write && !this.includeReads) return undefined;
    if (!(this.nextFault() < this.errorRate)) return undefined;
    const kind = this.kinds[Math.floor(this.nextFault() * this.kinds.length)] ?? "500";
    return new InjectedFault(kind, write && this.nextFault() < this.afterWriteRate);
  }

  delayMs(): number {
    if (!this.latency) return 0;
    const { min, max } = this.latency;
    return Math.round(min + this.nextLatency() * (max - min));
  }
}

function rate(value: number | undefined, name: string): number {
  if (value === undefined) return 0;
  if (!(value >= 0 && value <= 1)) throw new Error(`faults.${name} must be between 0 and 1, not ${value}`);
  return value;
}

