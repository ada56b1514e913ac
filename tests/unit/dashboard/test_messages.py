from __future__ import annotations

from glimpse.auth.defaults import list_rules
from glimpse.dashboard.i18n import N_, Speech
from glimpse.dashboard.messages import POLICY_SENTENCES, UNNAMED_REFUSAL, FormError, message_for
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


def test_the_dashboards_own_errors_are_said_in_the_readers_language() -> None:
    refused = FormError(N_("Property line %(number)s must read key=value."), number=3)
    assert refused.message == "Property line 3 must read key=value."  # as the logs and a test read it
    assert refused.http_status == 400 and isinstance(refused, BadRequest)
    assert message_for(refused, Speech("it").gettext) == "La riga 3 delle proprietà deve avere la forma chiave=valore."
    assert message_for(Forbidden("You are not authorized to complete add_image action."), Speech("it").gettext) == (
        "Non puoi creare immagini."
    )
    # The domain's other messages are the API's: English whatever the reader's language.
    assert message_for(BadRequest("Image 1 is odd."), Speech("it").gettext) == "Image 1 is odd."
