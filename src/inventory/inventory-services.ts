import type { AccountActivity } from './account-activity.js';
import type { CertificateLabels } from './certificate-labels.js';
import type { HealthReport } from './health-report.js';
import type { KeyInventory } from './key-inventory.js';
import type { Lineage } from './lineage.js';
import type { WebhookAdmin } from './webhooks.js';

/**
 * The inventory's services the admin API reads and changes through (compose-inventory.ts builds them):
 * lineage, labels, renewal health, the key inventory, when accounts were last seen, and webhooks.
 */
export interface InventoryServices {
  lineage: Lineage;
  labels: CertificateLabels;
  health: HealthReport;
  keys: KeyInventory;
  activity: AccountActivity;
  webhooks: WebhookAdmin;
}
