import type { WebSocket } from 'ws';

/** What shutdown needs of an open factory session. */
export interface OpenSession {
  close(code: number, reason: string): void;
  readonly done: Promise<void>;
}

/** One connected factory: its sockets and the leases this replica knows it holds. */
export interface FactoryEntry {
  factoryId: string;
  tenants: string[];
  capabilities: string[];
  control: Set<WebSocket>;
  events: Set<WebSocket>;
  /** jobId → epoch of leases handed to (or confirmed for) this factory here. */
  held: Map<string, number>;
}

/**
 * The factories connected to this replica. Lanes of one factory share an entry, so the events
 * lane can check a batch against leases the control lane claimed without a store read.
 */
export class FactoryRegistry {
  private readonly entries = new Map<string, FactoryEntry>();
  /** Every open session, registered or not, so shutdown can close and await them. */
  readonly sessions = new Set<OpenSession>();

  entry(factoryId: string, tenants: string[], capabilities: string[]): FactoryEntry {
    let e = this.entries.get(factoryId);
    if (e === undefined) {
      e = {
        factoryId,
        tenants,
        capabilities,
        control: new Set(),
        events: new Set(),
        held: new Map(),
      };
      this.entries.set(factoryId, e);
    } else {
      e.tenants = tenants;
      e.capabilities = capabilities;
    }
    return e;
  }

  get(factoryId: string): FactoryEntry | undefined {
    return this.entries.get(factoryId);
  }

  /** Drops the entry when its last socket is gone; true when the factory left this replica. */
  release(entry: FactoryEntry): boolean {
    if (entry.control.size > 0 || entry.events.size > 0) return false;
    this.entries.delete(entry.factoryId);
    return true;
  }

  /** Connected factories and their sockets, for metrics and shutdown. */
  all(): FactoryEntry[] {
    return [...this.entries.values()];
  }
}
