// Store-name rules, mirroring the server's validate_store_name
// (functions/storeplatform/contract.py) check for check and message for message,
// so the inline message says exactly what the gateway would answer.

export const NAME_PREFIX = "store-";
export const NAME_MAX_LENGTH = 40;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The reason `name` is not a valid store name, or null when it is valid. */
export function storeNameProblem(name) {
  if (typeof name !== "string" || name === "") {
    return "store name is required";
  }
  if (!name.startsWith(NAME_PREFIX)) {
    return `store name must start with '${NAME_PREFIX}'`;
  }
  // Python's len() counts code points; String.length counts UTF-16 units.
  const length = Array.from(name).length;
  if (length > NAME_MAX_LENGTH) {
    return `store name must be at most ${NAME_MAX_LENGTH} characters (got ${length})`;
  }
  if (!DNS_LABEL.test(name)) {
    return "store name may contain only lowercase letters, digits and '-', "
      + "and must end with a letter or digit";
  }
  return null;
}
