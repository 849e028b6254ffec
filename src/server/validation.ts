/**
 * How route schemas are checked. Bodies are checked as sent: no type coercion (`"note": 5` is not a note) and no
 * silent removal of unknown fields (a misspelt field is an error, not ignored). Path and query parameters arrive as
 * text, so they are coerced to the schema's numbers and booleans.
 */
import { Ajv, type Options } from 'ajv';
import type { FastifyInstance, FastifySchema } from 'fastify';

const common: Options = { allErrors: false, useDefaults: true, strict: false };

export function installValidation(app: FastifyInstance): void {
  const body = new Ajv({ ...common, coerceTypes: false, removeAdditional: false });
  const text = new Ajv({ ...common, coerceTypes: 'array', removeAdditional: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema as FastifySchema & object));
}
