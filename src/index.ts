export * from './errors/index.js';
export * from './image/registry/index.js';
