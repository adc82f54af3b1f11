// A retry budget per upstream: retries may be at most `ratio` of recent requests, with a floor of
// one retry per second, so a failing upstream is never hit with a retry storm.
const WINDOW_SEC = 10;
const FLOOR_PER_SEC = 1;

export class RetryBudget {
  private readonly requests = new Array<number>(WINDOW_SEC).fill(0);
  private readonly retries = new Array<number>(WINDOW_SEC).fill(0);
  private second = 0;

  constructor(
    private readonly ratio: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Moves the window to the current second, clearing the buckets that fell out of it. */
  private advance(): number {
    const now = Math.floor(this.clock() / 1000);
    const gap = Math.min(now - this.second, WINDOW_SEC);
    for (let i = 1; i <= gap; i++) {
      const slot = (this.second + i) % WINDOW_SEC;
      this.requests[slot] = 0;
      this.retries[slot] = 0;
    }
    if (gap > 0) this.second = now;
    return now % WINDOW_SEC;
  }

  /** Counts a first attempt. */
  recordRequest(): void {
    this.requests[this.advance()]!++;
  }

  /** Spends a retry if the budget allows one now. */
  tryRetry(): boolean {
    const slot = this.advance();
    const requests = this.requests.reduce((a, b) => a + b, 0);
    const retries = this.retries.reduce((a, b) => a + b, 0);
    if (retries >= Math.max(this.ratio * requests, FLOOR_PER_SEC * WINDOW_SEC)) return false;
    this.retries[slot]!++;
    return true;
  }
}
