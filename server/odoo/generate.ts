// A generator of Odoo-17-shaped databases: the tables and columns OdooOps reads, neutralizes and masks
// (see ../shared/notes/odoo-research.md §2, §4, §7), filled with realistic fake personal data, and a
// matching filestore (<filestore>/<xx>/<sha1>, as ir_attachment.store_fname says). Deterministic for a
// seed, any size: `partners` scales everything else. Not a full Odoo: enough of one to back up,
// restore, clone and verify on real PostgreSQL.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';

export interface GenerateOptions {
  partners: number;
  /** Attachments per 10 partners (files in the filestore); default 3. */
  attachmentsPer10?: number;
  /** Bytes of each attachment; default 2048. */
  attachmentBytes?: number;
  seed?: number;
}

export interface Generated {
  partners: number;
  users: number;
  messages: number;
  attachments: number;
  filestoreBytes: number;
}

const FIRST = ['Ana', 'Bruno', 'Chloé', 'Dmitri', 'Emma', 'Farid', 'Greta', 'Hiroshi', 'Inès', 'Jonas', 'Kofi', 'Lena', 'Mateo', 'Nora', 'Olivier', 'Priya', 'Quentin', 'Rosa', 'Sven', 'Tariq', 'Ursula', 'Victor', 'Wanda', 'Xavier', 'Yara', 'Zoltan'];
const LAST = ['Almeida', 'Bernard', 'Castillo', 'Dubois', 'Eriksen', 'Fontaine', 'García', 'Hoffmann', 'Ivanova', 'Janssens', 'Kowalski', 'Lambert', 'Moreau', 'Nakamura', 'Okafor', 'Peeters', 'Quispe', 'Rossi', 'Schmidt', 'Tanaka', 'Urbano', 'Vermeulen', 'Wójcik', 'Yilmaz', 'Zhang'];
const CITIES = [['Brussels', '1000', 'BE'], ['Lyon', '69001', 'FR'], ['Porto', '4000-001', 'PT'], ['Utrecht', '3511', 'NL'], ['Leipzig', '04109', 'DE'], ['Valencia', '46001', 'ES']];
const STREETS = ['Rue de la Loi', 'Avenue Louise', 'Hauptstraße', 'Calle Mayor', 'Kerkstraat', 'Rua Augusta'];

/** A small seeded PRNG (mulberry32): the same seed gives the same database. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCHEMA = `
create table ir_module_module (id serial primary key, name varchar not null unique, state varchar, latest_version varchar);
create table ir_config_parameter (id serial primary key, key varchar not null unique, value text not null);
create table ir_model_data (id serial primary key, module varchar not null, name varchar not null, model varchar not null, res_id integer, unique (module, name));
create table ir_cron (id serial primary key, name varchar, active boolean default true);
create table ir_mail_server (id serial primary key, name varchar not null, smtp_host varchar, smtp_port integer,
  smtp_user varchar, smtp_pass varchar, smtp_encryption varchar, smtp_authentication varchar, active boolean default true);
create table fetchmail_server (id serial primary key, name varchar, server varchar, "user" varchar, password varchar, active boolean default true);
create table iap_account (id serial primary key, service_name varchar, account_token varchar);
create table payment_provider (id serial primary key, code varchar, state varchar, stripe_publishable_key varchar, stripe_secret_key varchar);
create table res_company (id serial primary key, name varchar, email varchar, phone varchar, mobile varchar, vat varchar);
create table res_partner (id serial primary key, name varchar, complete_name varchar, email varchar, email_normalized varchar,
  phone varchar, mobile varchar, phone_sanitized varchar, street varchar, street2 varchar, zip varchar, city varchar,
  country_code varchar, vat varchar, website varchar, comment text, function varchar, company_name varchar,
  signup_token varchar, active boolean default true);
create table res_users (id serial primary key, login varchar not null unique, password varchar, partner_id integer references res_partner (id),
  signature text, totp_secret varchar, oauth_uid varchar, oauth_access_token varchar, active boolean default true);
create table res_users_apikeys (id serial primary key, user_id integer references res_users (id), name varchar, key varchar, index varchar(8));
create table res_partner_bank (id serial primary key, partner_id integer references res_partner (id), acc_number varchar, sanitized_acc_number varchar, acc_holder_name varchar);
create table mail_message (id serial primary key, model varchar, res_id integer, author_id integer references res_partner (id),
  subject varchar, body text, email_from varchar, reply_to varchar, message_id varchar, record_name varchar);
create table mail_mail (id serial primary key, mail_message_id integer references mail_message (id), body_html text, email_to text, email_cc varchar);
create table ir_attachment (id serial primary key, name varchar not null, res_model varchar, res_id integer, res_name varchar,
  type varchar default 'binary', url varchar, store_fname varchar, db_datas bytea, checksum varchar(40), file_size integer, mimetype varchar,
  index_content text, public boolean default false);
`;

/**
 * Creates the tables in `db` (an empty database) and fills them; writes the attachments' files under
 * `filestore` (created if missing). Returns what it made.
 */
export async function generateOdooDatabase(db: pg.ClientBase, filestore: string, opts: GenerateOptions): Promise<Generated> {
  const rand = prng(opts.seed ?? 17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * 10)).join('');
  await db.query(SCHEMA);
  await db.query(`
    insert into ir_module_module (name, state, latest_version) values
      ('base', 'installed', '17.0.1.3'), ('web', 'installed', '17.0.1.0'), ('mail', 'installed', '17.0.1.15'),
      ('contacts', 'installed', '17.0.1.0'), ('iap', 'installed', '17.0.1.1'), ('payment', 'installed', '17.0.2.0'),
      ('payment_stripe', 'installed', '17.0.2.0'), ('website', 'uninstalled', null), ('crm', 'uninstalled', null);
    insert into ir_config_parameter (key, value) values
      ('database.uuid', gen_random_uuid()::text), ('database.secret', gen_random_uuid()::text),
      ('database.create_date', now()::text), ('web.base.url', 'https://erp.example.com'),
      ('mail.catchall.domain', 'example.com'), ('google_maps.api_key', 'AIzaSy-fake-' || md5(random()::text)),
      ('mail.web_push_vapid_private_key', md5(random()::text)), ('base_setup.default_user_rights', 'True');
    insert into ir_cron (name, active) values
      ('Base: Auto-vacuum internal data', true), ('Mail: Email Queue Manager', true),
      ('Partner Autocomplete: Sync with remote DB', true), ('Payment: Post-process transactions', true);
    insert into ir_model_data (module, name, model, res_id) values
      ('base', 'autovacuum_job', 'ir.cron', 1), ('mail', 'ir_cron_mail_scheduler_action', 'ir.cron', 2),
      ('payment', 'cron_post_process_payment_tx', 'ir.cron', 4);
    insert into ir_mail_server (name, smtp_host, smtp_port, smtp_user, smtp_pass, smtp_encryption, smtp_authentication) values
      ('Company SMTP', 'smtp.example.com', 587, 'erp@example.com', 'smtp-pass-' || md5(random()::text), 'starttls', 'login');
    insert into fetchmail_server (name, server, "user", password) values ('Inbox', 'imap.example.com', 'inbox@example.com', 'imap-pass-' || md5(random()::text));
    insert into iap_account (service_name, account_token) values ('sms', md5(random()::text));
    insert into payment_provider (code, state, stripe_publishable_key, stripe_secret_key) values
      ('stripe', 'enabled', 'pk_live_' || md5(random()::text), 'sk_live_' || md5(random()::text));
    insert into res_company (name, email, phone, mobile, vat) values ('Example SA', 'info@example.com', '+32 2 555 01 00', '+32 470 55 01 00', 'BE0477472701');`);

  // Partners, in batches: one round trip per 1,000 rows.
  const partners = opts.partners;
  const cities: string[] = [];
  for (let start = 0; start < partners; start += 1000) {
    const n = Math.min(1000, partners - start);
    const cols: string[][] = Array.from({ length: 13 }, () => []);
    for (let i = 0; i < n; i++) {
      const id = start + i + 1;
      const first = pick(FIRST);
      const last = pick(LAST);
      const [city, zip, cc] = pick(CITIES);
      const email = `${first}.${last}.${id}@${pick(['gmail.com', 'proton.me', 'outlook.com', 'acme-corp.eu'])}`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '');
      const phone = `+32 4${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`;
      const values = [
        `${first} ${last}`, email, phone, `+33 6 ${digits(2)} ${digits(2)} ${digits(2)} ${digits(2)}`,
        `${Math.floor(rand() * 200) + 1} ${pick(STREETS)}`, zip!, city!, cc!,
        `${cc}0${digits(9)}`, `<p>Met ${first} at the fair; prefers calls before noon.</p>`,
        pick(['Buyer', 'CEO', 'Accountant', 'Engineer']), `${last} ${pick(['SA', 'GmbH', 'BV', 'SRL'])}`, `https://www.${last.toLowerCase()}.example`,
      ];
      values.forEach((v, k) => cols[k]!.push(v));
      cities.push(city!);
    }
    await db.query(
      `insert into res_partner (name, complete_name, email, email_normalized, phone, phone_sanitized, mobile, street, zip, city,
                                country_code, vat, comment, function, company_name, website, signup_token)
       select n, n, e, lower(e), p, regexp_replace(p, '[^+0-9]', '', 'g'), m, s, z, c, cc, v, co, f, cn, w, md5(e)
       from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                   $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]) as u(n, e, p, m, s, z, c, cc, v, co, f, cn, w)`,
      cols,
    );
  }

  // Users: one per 20 partners (at least 2: admin and a portal user), logins are their emails.
  const users = Math.max(2, Math.floor(partners / 20));
  await db.query(
    `insert into res_users (login, password, partner_id, signature, totp_secret, oauth_access_token)
     select case when p.id = 1 then 'admin' else p.email end,
            '$pbkdf2-sha512$600000$' || md5(p.email), p.id, '<p>--<br>' || p.name || '</p>',
            case when p.id % 3 = 0 then upper(substr(md5(p.name), 1, 16)) end,
            case when p.id % 4 = 0 then 'ya29.' || md5(p.phone) end
     from res_partner p where p.id <= $1 order by p.id`,
    [users],
  );
  await db.query(`insert into res_users_apikeys (user_id, name, key, index) select id, 'CI key', md5(login || 'k'), substr(md5(login), 1, 8) from res_users where id % 2 = 1`);
  await db.query(`insert into res_partner_bank (partner_id, acc_number, sanitized_acc_number, acc_holder_name)
                  select id, 'BE' || lpad((id::bigint * 7919 % 100000000)::text, 14, '0'), 'BE' || lpad((id::bigint * 7919 % 100000000)::text, 14, '0'), name
                  from res_partner where id % 5 = 0`);
  // Chatter: two messages per partner, quoting their email and phone as real chatter does.
  await db.query(`
    insert into mail_message (model, res_id, author_id, subject, body, email_from, reply_to, message_id, record_name)
    select 'res.partner', p.id, p.id, 'Re: quotation ' || p.id,
           '<p>Hello, please call me at ' || p.phone || ' or write to ' || p.email || '. VAT ' || p.vat || '.</p>',
           '"' || p.name || '" <' || p.email || '>', p.email, '<' || md5(p.email) || '@mail.example.com>', p.name
    from res_partner p, generate_series(1, 2) g;
    insert into mail_mail (mail_message_id, body_html, email_to, email_cc)
    select m.id, m.body, m.email_from, null from mail_message m where m.id % 10 = 0;`);

  // Attachments: web assets (res_model ir.ui.view or none: Odoo regenerates or needs them) and business
  // documents (invoices, CVs) attached to partners. Files go where store_fname says.
  const count = Math.max(4, Math.floor((partners / 10) * (opts.attachmentsPer10 ?? 3)));
  const size = opts.attachmentBytes ?? 2048;
  const rows: string[][] = [[], [], [], [], [], [], []];
  let filestoreBytes = 0;
  const dirs = new Set<string>();
  for (let i = 1; i <= count; i++) {
    const asset = i % 4 === 1;
    const partner = ((i * 7) % partners) + 1;
    const text = asset
      ? `/* web.assets_backend bundle ${i} */ .o_web_client { color: #${digits(6)}; }\n`
      : `Invoice ${i} for partner ${partner} living in ${cities[partner - 1]}.\n`;
    const content = Buffer.alloc(size, text);
    const sha1 = createHash('sha1').update(content).digest('hex');
    const fname = `${sha1.slice(0, 2)}/${sha1}`;
    const dir = join(filestore, sha1.slice(0, 2));
    if (!dirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      dirs.add(dir);
    }
    await writeFile(join(filestore, fname), content);
    filestoreBytes += content.length;
    // Some business documents are images (a partner's photo): placeholders for them must be images too.
    const image = !asset && i % 8 === 3;
    rows[0]!.push(asset ? `web.assets_backend.min.css` : image ? `photo-${partner}.png` : `INV-2026-${String(i).padStart(5, '0')}.pdf`);
    rows[1]!.push(asset ? 'ir.ui.view' : 'res.partner');
    rows[2]!.push(asset ? '' : String(partner));
    rows[3]!.push(fname);
    rows[4]!.push(sha1);
    rows[5]!.push(String(content.length));
    rows[6]!.push(asset ? 'text/css' : image ? 'image/png' : 'application/pdf');
  }
  await db.query(
    `insert into ir_attachment (name, res_model, res_id, res_name, store_fname, checksum, file_size, mimetype, url, index_content)
     select n, m, nullif(r, '')::integer, p.name, f, c, s::integer, t, case when m = 'ir.ui.view' then '/web/assets/' || u.o || '/' || n end,
            case when m = 'res.partner' then 'Invoice for ' || p.name || ' ' || p.email end
     from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) with ordinality as u(n, m, r, f, c, s, t, o)
     left join res_partner p on p.id = nullif(r, '')::integer`,
    rows,
  );
  // Odoo's checklist markers: empty files the garbage collector uses.
  await mkdir(join(filestore, 'checklist'), { recursive: true });
  await db.query('analyze');
  const messages = (await db.query('select count(*)::int as n from mail_message')).rows[0].n as number;
  return { partners, users, messages, attachments: count, filestoreBytes };
}
