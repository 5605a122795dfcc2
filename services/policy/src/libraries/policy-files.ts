import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { createCatalogue, parseAssistantObjects, parsePlans, type Catalogue } from './catalogue.js';
import { parseRoleTemplates } from './role-templates.js';

export interface PolicyFiles {
  modelText: string;
  catalogue: Catalogue;
}

/** Reads `model.conf`, `roles.csv`, `plans.csv` and `scopes.csv` from the policy folder and checks them together. */
export async function readPolicyFiles(dir: string | URL): Promise<PolicyFiles> {
  const base = typeof dir === 'string' ? pathToFileURL(dir.endsWith('/') ? dir : `${dir}/`) : dir;
  const read = (name: string) => readFile(new URL(name, base), 'utf8');
  const [modelText, roles, plans, scopes] = await Promise.all([
    read('model.conf'),
    read('roles.csv'),
    read('plans.csv'),
    read('scopes.csv'),
  ]);
  return {
    modelText,
    catalogue: createCatalogue({
      templates: parseRoleTemplates(roles),
      plans: parsePlans(plans),
      assistantObjects: parseAssistantObjects(scopes),
    }),
  };
}
