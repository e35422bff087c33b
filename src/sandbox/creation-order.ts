/**
 * Ids in creation order, so that a page is a slice rather than a walk from the first resource, and a delete does not
 * shift 150,000 entries: deleted slots are left as holes and squeezed out once, by the next read.
 */
export class CreationOrder {
  private ids: (string | undefined)[] = [];
  private readonly position = new Map<string, number>();
  private holes = 0;

  get size(): number {
    return this.position.size;
  }

  add(id: string): void {
    this.position.set(id, this.ids.length);
    this.ids.push(id);
  }

  delete(id: string): void {
    const at = this.position.get(id);
    if (at === undefined) return;
    this.ids[at] = undefined;
    this.position.delete(id);
    this.holes += 1;
  }

  /** `offset` is 0-based. */
  slice(offset: number, count: number): string[] {
    this.compact();
    return this.ids.slice(offset, offset + count) as string[];
  }

  all(): string[] {
    return this.slice(0, this.ids.length);
  }

  private compact(): void {
    if (this.holes === 0) return;
    const kept: string[] = [];
    for (const id of this.ids) {
      if (id === undefined) continue;
      this.position.set(id, kept.length);
      kept.push(id);
    }
    this.ids = kept;
    this.holes = 0;
  }
}
