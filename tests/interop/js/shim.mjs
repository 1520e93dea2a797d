// shim.mjs: what js-libp2p 3.x expects of the runtime that Node 20 lacks.
// Import it first in every script: `import './shim.mjs'`.  ES modules are
// evaluated in import order, so it runs before any libp2p module does.
//
// Promise.withResolvers (ES2024) arrived in Node 22; @libp2p/ping,
// libp2p's dial queue and others call it.

if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    },
    writable: true,
    configurable: true
  })
}
