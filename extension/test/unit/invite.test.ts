// "Invite member…": what a person types becomes the API's invitation, or a message saying what to type.
import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { invitation, inviteeLabel, parseInvitee } from '../../src/invite.ts';

describe('parseInvitee', () => {
  it('takes a GitHub login, with or without @, and an email address', () => {
    assert.deepEqual(parseInvitee('octocat'), { githubLogin: 'octocat' });
    assert.deepEqual(parseInvitee('  @Mona-Lisa '), { githubLogin: 'Mona-Lisa' });
    assert.deepEqual(parseInvitee('ana@example.com'), { email: 'ana@example.com' });
  });

  it('says what is wrong with anything else, and nothing of it reaches the request', () => {
    assert.match(String(parseInvitee('')), /a GitHub login \(octocat\) or an email address/);
    assert.match(String(parseInvitee('-octocat')), /not a GitHub login/);
    assert.match(String(parseInvitee('octo--cat')), /not a GitHub login/);
    assert.match(String(parseInvitee('a'.repeat(40))), /not a GitHub login/);
    assert.match(String(parseInvitee('octocat; rm -rf /')), /not a GitHub login/);
    assert.match(String(parseInvitee('ana@')), /not an email address/);
    assert.match(String(parseInvitee('ana@example.com, bob@example.com')), /not an email address/);
  });

  it('makes the contract\'s body and names the invitee', () => {
    assert.deepEqual(invitation({ githubLogin: 'octocat' }, 'developer'), { githubLogin: 'octocat', role: 'developer' });
    assert.deepEqual(invitation({ email: 'ana@example.com' }, 'viewer'), { email: 'ana@example.com', role: 'viewer' });
    assert.throws(() => invitation({ githubLogin: 'octocat' }, 'owner' as never));
    assert.equal(inviteeLabel({ githubLogin: 'octocat' }), '@octocat');
    assert.equal(inviteeLabel({ email: 'ana@example.com' }), 'ana@example.com');
  });
});
