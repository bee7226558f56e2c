/// <reference types="vite/client" />
/** True only in the browser tests' build (see vite.config.ts). */
declare const __TEST_HOOKS__: boolean;
