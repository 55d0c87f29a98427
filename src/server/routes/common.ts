import { z } from 'zod';
import { Id } from '../../core/index.js';
import { ErrorBody } from '../api-errors.js';

/** `:id` of a record in the path. */
export const IdParams = z.object({ id: Id });

/** `?tenant=`: the tenant to act in, for tokens that span several (see requestTenant). */
export const TenantQuery = z.object({ tenant: z.string().optional() }).strict();

/** The error responses every authenticated route may give, for the OpenAPI document. */
export const ERROR_RESPONSES = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
};
