/** A clock tests move by hand. Starts at a fixed, realistic instant. */
export class TestClock {
  private t: number;

  constructor(start = Date.UTC(2026, 10, 21, 12, 0, 0)) {
    this.t = start;
  }

  readonly now = (): number => this.t;

  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}
