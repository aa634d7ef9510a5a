/** The value every benchmark stores: about 100 bytes of JSON (Keyv stores `{"value":…}` around it). */
export interface BenchValue {
  id: number;
  name: string;
  email: string;
  roles: string[];
  active: boolean;
}

export function makeValue(id: number): BenchValue {
  const padded = String(id).padStart(6, '0');
  return { id, name: `user-${padded}`, email: `user${padded}@example.com`, roles: ['reader'], active: true };
}
