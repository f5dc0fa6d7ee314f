// The one error type for an API server's answer outside 2xx: the request that failed,
// the HTTP status, the Status reason and message, and the body as the server sent it.

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    /** Status.reason (e.g. "AlreadyExists", "Invalid"); "" when the body has none. */
    readonly reason: string,
    /** The API server's own message (Status.message), or the body as text. */
    readonly serverMessage: string,
    /** The parsed body (a Status object, usually), or its text when it is not JSON. */
    readonly body?: unknown,
  ) {
    super(`${method} ${path} → ${status}${reason ? ` ${reason}` : ""}: ${serverMessage}`);
  }

  /** Maps one answer to the error: reason and message from a Status body when there is one. */
  static from(method: string, path: string, status: number, body: unknown): KubeApiError {
    const b = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
    return new KubeApiError(
      method,
      path,
      status,
      typeof b.reason === "string" ? b.reason : "",
      messageOf(body),
      body,
    );
  }
}

/** The `message` of a Kubernetes Status object, or the body as text. */
export function messageOf(body: unknown): string {
  if (body && typeof body === "object" && "message" in body && typeof body.message === "string")
    return body.message;
  if (body === undefined) return "(empty body)";
  return typeof body === "string" ? body : JSON.stringify(body);
}

export const isNotFound = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && e.status === 404;
export const isConflict = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && e.status === 409;
export const isForbidden = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && e.status === 403;
export const isAlreadyExists = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError && e.status === 409 && e.reason === "AlreadyExists";
/**
 * The denial of an admission policy or webhook, which the API server sends as 403 Forbidden:
 * "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: …" or "admission webhook
 * \"w\" denied the request: …". It judges the object, not the caller's rights.
 */
const ADMISSION_DENIAL =
  /ValidatingAdmissionPolicy '[^']*' with binding '[^']*' denied request|admission webhook "[^"]*" denied the request/;

/**
 * The API server refused the object itself (400 BadRequest, 413, 415, 422 Invalid, or a 403
 * that is an admission policy's or webhook's denial): sending it again cannot succeed. Other
 * 401/403 (credentials, RBAC, quota), 404, 408, 409 and 429 can pass with time or an admin's
 * fix, so they are retried.
 */
export const isPermanentRejection = (e: unknown): e is KubeApiError =>
  e instanceof KubeApiError &&
  ([400, 413, 415, 422].includes(e.status) ||
    (e.status === 403 && ADMISSION_DENIAL.test(e.serverMessage)));
