// Git push → environments on real Odoo 19.0: install, update by manifest version, a code-only change, a
// failed update and a failed health check rolled back, a branch's new database with demo data
// (test/helpers/deploy-odoo-suite.ts).
import { deployOdooSuite } from './helpers/deploy-odoo-suite.ts';

deployOdooSuite('19.0');
