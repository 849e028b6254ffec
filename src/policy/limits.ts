/**
 * Bounds on policy input, so that a hostile file fails fast instead of eating memory.
 * A policy of 100,000 labels in native YAML is about 6 MB; 16 MiB leaves room and still refuses a 50 MB file.
 */
export const MAX_POLICY_BYTES = 16 * 1024 * 1024;
/** YAML aliases allowed in one document (the `yaml` library's alias-bomb guard). */
export const MAX_YAML_ALIASES = 100;
/** Xen XML nesting beyond this is not a policy (the real ones nest 6 deep). */
export const MAX_XML_DEPTH = 32;
