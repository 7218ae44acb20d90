// Git push → environments on real Odoo 17.0, with what is only tested there (approvals, development
// environments, staging's fresh mode, the ssh target): test/helpers/deploy-odoo-suite.ts.
import { deployOdooSuite } from './helpers/deploy-odoo-suite.ts';

deployOdooSuite('17.0');
