from __future__ import annotations

from glimpse.auth.defaults import list_rules
from glimpse.dashboard.messages import POLICY_SENTENCES, UNNAMED_REFUSAL, message_for
from glimpse.errors import BadRequest, Forbidden


def test_every_sentence_names_a_registered_rule() -> None:
    registered = {rule.name for rule in list_rules()}
    assert set(POLICY_SENTENCES) <= registered


def test_a_policy_refusal_is_put_in_words() -> None:
    refused = Forbidden("You are not authorized to complete publicize_image action.")
    assert message_for(refused) == "You may not make images public."
    assert message_for(Forbidden("You are not authorized to complete cache_prune action.")) == UNNAMED_REFUSAL


def test_other_messages_are_kept() -> None:
    protected = Forbidden("Image 1 is protected and cannot be deleted.")
    assert message_for(protected) == protected.message
    # Only the policy engine's whole sentence is translated, not one quoted inside another message.
    quoted = BadRequest("Name 'You are not authorized to complete add_image action.' is too long.")
    assert message_for(quoted) == quoted.message
