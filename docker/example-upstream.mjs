// A stand-in for a payment API, used by docker-compose.yml so writeguard has
// something to proxy to. POST answers 201 with a JSON "charge"; everything
// else answers 200. Every response carries a `request-id` header.
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";

const port = Number(process.env.PORT ?? 9000);

const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const requestId = randomUUID();
    const isPost = req.method === "POST";
    const payload = isPost
      ? { id: `ch_${requestId.slice(0, 8)}`, object: "charge", status: "succeeded", received: body }
      : { ok: true, method: req.method, path: req.url };
    res.writeHead(isPost ? 201 : 200, {
      "content-type": "application/json",
      "request-id": requestId,
    });
    res.end(JSON.stringify(payload));
    console.log(`${req.method} ${req.url} -> ${isPost ? 201 : 200} ${requestId}`);
  });
});

server.listen(port, "0.0.0.0", () => console.log(`example upstream listening on :${port}`));

// As PID 1 Node ignores SIGTERM unless handled; stop promptly on `docker compose down`.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
