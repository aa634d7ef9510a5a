export * from './adapter/index.js';
export * from './errors.js';
