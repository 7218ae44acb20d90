// kill -9 mid-backup, mid-restore and mid-clone on a real Odoo 17.0 database, then the retry (test/helpers/crash-odoo-suite.ts).
import { crashOdooSuite } from './helpers/crash-odoo-suite.ts';

crashOdooSuite('17.0');
