// Comparing secrets: in constant time for equal lengths (tokens have fixed lengths).
import { timingSafeEqual } from 'node:crypto';

export const sameSecret = (a: string, b: string): boolean => {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
};
