// Redis Cluster: one sentinel per hash slot, so that the step that claims a record can check, in
// the same script, that the master holding the record still holds its data. An emptied master
// cannot pass on the strength of another master's sentinel. Pure.
import calculateSlot from 'cluster-key-slot';

const SLOT_COUNT = 16384;

let tags: string[] | null = null;

/** For each slot, a short string that hashes to it (found once, by counting up in base 36). */
function slotTags(): string[] {
  if (tags !== null) return tags;
  const found: string[] = new Array<string>(SLOT_COUNT);
  let missing = SLOT_COUNT;
  // About 170,000 hashes cover every slot (coupon collector); the bound only guards a broken hash.
  for (let i = 0; missing > 0 && i < 10_000_000; i++) {
    const tag = i.toString(36);
    const slot = calculateSlot(tag);
    if (found[slot] === undefined) {
      found[slot] = tag;
      missing--;
    }
  }
  tags = found;
  return found;
}

/** The sentinel key living in the same slot as `{scope}`-tagged record keys. */
export function slotSentinelKey(keyPrefix: string, scope: string): string {
  return slotSentinelKeyOf(keyPrefix, calculateSlot(scope));
}

export function slotSentinelKeyOf(keyPrefix: string, slot: number): string {
  return `${keyPrefix}{${slotTags()[slot]!}}:sentinel`;
}

/** Every slot's sentinel key, for `store init` and `store ack`. */
export function allSlotSentinelKeys(keyPrefix: string): string[] {
  return slotTags().map((tag) => `${keyPrefix}{${tag}}:sentinel`);
}
