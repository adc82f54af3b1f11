// The store contract against the memory store.
import { MemoryStore } from '../../src/store/memory.js';
import { storeContract } from '../helpers/store-contract.js';

storeContract('memory', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});
