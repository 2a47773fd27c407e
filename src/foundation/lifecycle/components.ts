/**
 * Ordered start and reverse-ordered stop of the Neuron's parts. A part that fails to start stops
 * every part already started, so a failed start leaves nothing running and nothing half-open.
 */
import type { Logger } from 'pino';

export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export class ComponentStack {
  readonly #started: Component[] = [];

  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  async start(component: Component): Promise<void> {
    const began = performance.now();
    await component.start();
    this.#started.push(component);
    this.#logger.debug({ component: component.name, ms: Math.round(performance.now() - began) }, 'component started');
  }

  /** Stops in reverse order; each part gets its share of the deadline and a slow one is logged, not waited on forever. */
  async stopAll(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (this.#started.length > 0) {
      const component = this.#started.pop()!;
      const remaining = Math.max(deadline - Date.now(), 1);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), remaining);
      });
      try {
        const outcome = await Promise.race([component.stop().then(() => 'stopped' as const), timedOut]);
        if (outcome === 'timeout') this.#logger.warn({ component: component.name }, 'component did not stop before the shutdown deadline');
      } catch (error) {
        this.#logger.error({ component: component.name, err: error }, 'component failed to stop cleanly');
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
