import type { ConnectionSlots } from './slots.js';

interface Pending<Input, Output> {
  input: Input;
  resolve: (output: Output) => void;
  reject: (error: unknown) => void;
  /** When this call's own wait for a connection is over. */
  deadline: number;
}

class Batch<Input, Output> {
  items: Array<Pending<Input, Output>> = [];
  readonly keys = new Set<string>();
  /** Where the statement waits in the slots' queue. */
  position = 0;
  /** The inputs' size so far, as `sizeOf` counts it. */
  size = 0;
}

export interface CoalescerOptions<Input, Output> {
  slots: ConnectionSlots;
  /** Most inputs merged into one statement. */
  maxBatch: number;
  /** Most of `sizeOf` merged into one statement; an input larger than that goes alone. */
  maxBatchSize?: number;
  sizeOf?: (input: Input) => number;
  /** Runs one input alone (the cheaper statement when there is nothing to merge). */
  one: (namespace: string, input: Input) => Promise<Output>;
  /** Runs several inputs of one namespace in one statement; answers in their order. */
  many: (namespace: string, inputs: Input[]) => Promise<Output[]>;
  /** The key an input reads or writes. */
  keyOf: (input: Input) => string;
  /**
   * Whether the inputs write. Writes of the same key never share a statement (each needs its own version),
   * and no input joins a statement if that would let it overtake a later-queued one on its key.
   */
  writes: boolean;
}

/**
 * Runs a statement per input while a connection is free; once every connection is busy, inputs of the
 * same namespace that arrive meanwhile wait together and go as one statement when a connection frees.
 * Nothing waits that would not have waited anyway, and a loaded pool makes fewer, fuller round trips.
 */
export class Coalescer<Input, Output> {
  private readonly open = new Map<string, Batch<Input, Output>>();

  constructor(private readonly options: CoalescerOptions<Input, Output>) {}

  submit(namespace: string, input: Input): Promise<Output> {
    const { slots, maxBatch, keyOf, writes, sizeOf, maxBatchSize = Number.POSITIVE_INFINITY } = this.options;
    const key = keyOf(input);
    const claim = { namespace, keys: [key], writes };
    if (maxBatch <= 1 || slots.free) return slots.run(() => this.options.one(namespace, input), claim);
    const size = sizeOf?.(input) ?? 0;
    let batch = this.open.get(namespace);
    if (
      !batch ||
      batch.items.length >= maxBatch ||
      batch.size + size > maxBatchSize ||
      (writes && batch.keys.has(key)) ||
      !slots.mayJoin(batch.position, claim)
    ) {
      batch = this.queue(namespace);
    }
    batch.keys.add(key);
    batch.size += size;
    slots.claim(batch.position, claim);
    const joined = batch;
    const deadline = Date.now() + slots.waitTimeout;
    return new Promise<Output>((resolve, reject) => joined.items.push({ input, resolve, reject, deadline }));
  }

  private queue(namespace: string): Batch<Input, Output> {
    const batch = new Batch<Input, Output>();
    this.open.set(namespace, batch);
    const close = () => {
      if (this.open.get(namespace) === batch) this.open.delete(namespace);
    };
    const { slots } = this.options;
    // Each call waits at most its own connection timeout, counted from when it joined, not from the batch's start.
    const { keyOf, writes } = this.options;
    const shed = (now: number) => {
      const late = batch.items.filter((item) => item.deadline <= now);
      batch.items = batch.items.filter((item) => item.deadline > now);
      for (const item of late) item.reject(slots.timeoutError());
      const [first] = batch.items;
      if (first === undefined) {
        close();
        return undefined;
      }
      batch.keys.clear();
      for (const item of batch.items) batch.keys.add(keyOf(item.input));
      return { deadline: first.deadline, claims: [{ namespace, keys: [...batch.keys], writes }] };
    };
    slots
      .run(
        () => {
          close();
          return this.flush(namespace, batch.items);
        },
        undefined,
        shed,
      )
      .catch((error: unknown) => {
        // No slot came in time: the batch never ran.
        close();
        for (const item of batch.items) item.reject(error);
      });
    // run() queues at once when no slot is free, which is when batches are made.
    batch.position = slots.lastQueued;
    return batch;
  }

  private async flush(namespace: string, items: Array<Pending<Input, Output>>): Promise<void> {
    try {
      if (items.length === 1) {
        const [item] = items as [Pending<Input, Output>];
        item.resolve(await this.options.one(namespace, item.input));
        return;
      }
      const outputs = await this.options.many(
        namespace,
        items.map((item) => item.input),
      );
      for (const [index, item] of items.entries()) item.resolve(outputs[index] as Output);
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  }
}
