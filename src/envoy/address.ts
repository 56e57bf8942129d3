/** Where Envoy's admin API listens, in the forms operators write it. */
import { InvalidValue } from "../errors.ts";

/** A TCP base URL, or a Unix socket path (then the URL only names the request's host). */
export interface AdminAddress {
  baseURL: string;
  socketPath?: string;
  /** As the user wrote it, for log lines. */
  display: string;
}

const MAX_SOCKET_PATH_BYTES = 107;
const EXPECTED = "host:port, http://host:port or an absolute Unix socket path, such as 127.0.0.1:9001 (port 1 to 65535)";

// An explicit port is required: `http://127.0.0.1` would silently mean port 80, which no Envoy admin uses.
const TCP_ADDRESS = /^(?:http:\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})\/?$/;

/** Parses `host:port`, `http://host:port` or `/path/to/admin.sock`. */
export function parseAdminAddress(text: string): AdminAddress {
  if (text.startsWith("/")) {
    // A socket address holds a path of at most 107 bytes (sun_path, its terminating NUL aside).
    if (Buffer.byteLength(text) > MAX_SOCKET_PATH_BYTES)
      throw new InvalidValue(`a Unix socket path of at most ${MAX_SOCKET_PATH_BYTES} bytes; this one has ${Buffer.byteLength(text)}`);
    return { baseURL: "http://localhost", socketPath: text, display: text };
  }
  const match = TCP_ADDRESS.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw new InvalidValue(EXPECTED);
  return { baseURL: `http://${match[1]}:${port}`, display: text };
}
