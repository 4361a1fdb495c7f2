// Node preload for interop tests (`node --import <this file> server.js ...`): makes a
// third-party server that calls listen(port) without a host (e.g. server-everything)
// bind to 127.0.0.1 only, and reports the real port on stderr as
// "SWITCHBOARD_TEST_LISTENING <address> <port>", so tests can start it with PORT=0
// and learn the kernel-chosen port without racing for a free one.
import net from "node:net";

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
  const first = args[0];
  const isPort =
    typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first));
  if (isPort && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  this.once("listening", () => {
    const addr = this.address();
    if (addr && typeof addr === "object") {
      process.stderr.write(`SWITCHBOARD_TEST_LISTENING ${addr.address} ${addr.port}\n`);
    }
  });
  return originalListen.apply(this, args);
};
