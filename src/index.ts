export * from './adapter/index.js';
export * from './errors.js';
export * from './notify/index.js';
export * from './store/index.js';
