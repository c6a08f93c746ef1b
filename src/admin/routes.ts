import type { AdminRoute } from './route.js';
import { auditRoutes } from './routes-audit.js';
import { certificateSearchRoutes } from './routes-certificate-search.js';
import { estateRoutes } from './routes-estate.js';
import { identityRoutes } from './routes-identity.js';
import { inventoryRoutes } from './routes-inventory.js';
import { incidentRoutes } from './routes-incidents.js';

/** Every route of /admin/v1 (the OpenAPI document lists exactly these). */
export const ADMIN_ROUTES: readonly AdminRoute[] = [...identityRoutes, ...estateRoutes, ...certificateSearchRoutes, ...inventoryRoutes, ...incidentRoutes, ...auditRoutes];
