"""PII redaction: what is replaced, what is kept, and how spoken digits are handled."""

from __future__ import annotations

import time

from core.pii.policy import PiiPolicy
from core.pii.redact import RedactionResult, redact, redact_json, redact_text, redact_turns


def test_luhn_valid_card_is_redacted_and_order_number_is_kept() -> None:
    result = redact_text("Card 4111 1111 1111 1111 for order 1042, please.")
    assert result.text == "Card [CARD] for order 1042, please."
    assert result.counts == {"card": 1}


def test_dashed_and_unbroken_cards_are_redacted() -> None:
    text = "first 5555-5555-5555-4444 then 4012888888881881."
    assert redact(text) == "first [CARD] then [CARD]."


def test_card_length_digits_failing_luhn_are_kept() -> None:
    text = "Ticket 4111 1111 1111 1112 and id 1234567890123456 are fine."
    assert redact_text(text) == RedactionResult(text=text, counts={})


def test_card_followed_by_expiry_is_still_found() -> None:
    assert redact("card 4111 1111 1111 1111 12/26 exp") == "card [CARD] 12/26 exp"


def test_ssn_dashed_and_spaced_is_redacted_when_valid() -> None:
    result = redact_text("SSN 123-45-6789, or 123 45 6789.")
    assert result.text == "SSN [SSN], or [SSN]."
    assert result.counts == {"ssn": 2}


def test_invalid_ssn_area_or_blacklisted_number_is_kept() -> None:
    text = "codes 000-12-3456 and 078-05-1120"
    assert redact(text) == text


def test_nine_bare_digits_are_ssn_only_after_social_security_words() -> None:
    assert redact("my social security number is 123456789") == (
        "my social security number is [SSN]"
    )
    assert redact("tracking number 123456789") == "tracking number 123456789"


def test_uk_national_insurance_number_is_redacted_and_unissued_prefix_is_kept() -> None:
    result = redact_text("NI AB 12 34 56 C, not GB123456A")
    assert result.text == "NI [NATIONAL_ID], not GB123456A"
    assert result.counts == {"national_id": 1}


def test_valid_iban_is_redacted_without_swallowing_the_next_word() -> None:
    result = redact_text("Pay GB82 WEST 1234 5698 7654 32 THANKS and DE89370400440532013000.")
    assert result.text == "Pay [IBAN] THANKS and [IBAN]."
    assert result.counts == {"iban": 2}


def test_iban_with_bad_checksum_is_kept() -> None:
    text = "Pay GB82 WEST 1234 5698 7654 33 today"
    assert redact(text) == text


def test_email_is_redacted() -> None:
    result = redact_text("Write to dana.smith+calls@example.co.uk today.")
    assert result.text == "Write to [EMAIL] today."
    assert result.counts == {"email": 1}


def test_phone_numbers_keep_country_code_and_last_four_digits() -> None:
    result = redact_text("Call (415) 555-2671 or +44 20 7946 0958.")
    assert result.text == "Call +1••••••2671 or +44••••••0958."
    assert result.counts == {"phone": 2}


def test_default_region_decides_how_a_national_phone_number_is_read() -> None:
    assert redact_text("ring 020 7946 0958", default_region="GB").text == "ring +44••••••0958"


def test_spoken_card_number_is_replaced_as_a_whole() -> None:
    spoken = "four one one one one one one one one one one one one one one one"
    result = redact_text(f"My card is {spoken}, thanks.")
    assert result.text == "My card is [CARD], thanks."
    assert result.counts == {"card": 1}


def test_spoken_card_in_comma_groups_keeps_the_following_expiry_words() -> None:
    text = "Four one one one, one one one one, one one one one, one one one one, oh four two seven"
    assert redact(text) == "[CARD], oh four two seven"


def test_spoken_phone_number_with_oh_and_double_is_masked() -> None:
    result = redact_text("Reach me on two one two, double five five, oh one two three okay?")
    assert result.text == "Reach me on +1••••••0123 okay?"
    assert result.counts == {"phone": 1}


def test_spoken_number_in_non_ascii_text_is_replaced_at_the_right_place() -> None:
    text = "İpek Núñez: two one two five five five oh one two three, gracias"
    assert redact(text) == "İpek Núñez: +1••••••0123, gracias"


def test_mixed_written_and_spoken_phone_number_is_masked() -> None:
    assert redact("it's 212 triple five 0123") == "it's +1••••••0123"


def test_spoken_ssn_after_social_security_words_is_redacted() -> None:
    text = "My social security number is one two three, four five, six seven eight nine."
    assert redact(text) == "My social security number is [SSN]."


def test_spoken_words_outside_a_number_are_left_exactly_as_said() -> None:
    text = (
        "One of my orders is late. I want to book one appointment at five o'clock, "
        "Oh, and one two three four is my favourite song."
    )
    assert redact_text(text) == RedactionResult(text=text, counts={})


def test_words_next_to_a_written_card_do_not_hide_it() -> None:
    assert redact("card 4111 1111 1111 1111 one two three four") == (
        "card [CARD] one two three four"
    )


def test_spoken_oh_after_a_written_phone_number_does_not_hide_it() -> None:
    assert redact("call 212 555 0123, oh and one more thing") == (
        "call +1••••••0123, oh and one more thing"
    )


def test_names_and_account_references_are_kept() -> None:
    text = "Hi, my name is Dana Whitfield, account ACC-7781, order 1042, booking ref ZX-55."
    assert redact_text(text) == RedactionResult(text=text, counts={})


def test_counts_report_each_kind_replaced() -> None:
    text = (
        "Dana (dana@example.com) paid with 4111111111111111, call 415-555-2671 or +1 212 555 0123."
    )
    result = redact_text(text)
    assert result.counts == {"email": 1, "card": 1, "phone": 2}
    assert "dana@example.com" not in result.text
    assert "2671" in result.text


def test_redact_json_redacts_nested_strings_and_keeps_keys_and_other_values() -> None:
    original: dict[str, object] = {
        "dana@example.com": "owner",
        "turns": [
            {"role": "user", "text": "card 4111 1111 1111 1111", "ms": 1200},
            ["call me at (415) 555-2671", None, True],
        ],
        "meta": {"order": "order 1042", "score": 0.5},
    }
    redacted = redact_json(original)
    assert redacted == {
        "dana@example.com": "owner",
        "turns": [
            {"role": "user", "text": "card [CARD]", "ms": 1200},
            ["call me at +1••••••2671", None, True],
        ],
        "meta": {"order": "order 1042", "score": 0.5},
    }


def test_redact_json_returns_a_new_object_and_leaves_the_input_unchanged() -> None:
    original = {"turns": [{"text": "mail dana@example.com"}]}
    redacted = redact_json(original)
    assert original == {"turns": [{"text": "mail dana@example.com"}]}
    assert redacted == {"turns": [{"text": "mail [EMAIL]"}]}
    assert redacted is not original


def test_empty_and_clean_text_come_back_unchanged() -> None:
    assert redact_text("") == RedactionResult(text="", counts={})
    assert redact("Thanks, bye!") == "Thanks, bye!"


def test_dates_of_birth_written_and_spoken_are_redacted() -> None:
    assert redact("DOB 03/14/1985, thanks") == "DOB [DOB], thanks"
    assert redact("I was born on the fourteenth of March, nineteen eighty-five.") == (
        "I was born on [DOB]."
    )
    assert redact("twelve twelve ninety") == "[DOB]"


def test_appointment_and_invoice_dates_are_kept() -> None:
    text = "Your appointment is on March 3rd at 2 pm; the invoice from 10/02/2025 is paid."
    assert redact(text) == text


def test_a_bare_date_answering_a_birth_date_question_is_redacted() -> None:
    assert redact("June second.", context="What's your date of birth?") == "[DOB]."
    assert redact("June second.") == "June second."
    # A turn that gives a birth date does not make the next turn's dates birth dates.
    assert redact("Shipped March 2nd.", context="I was born May 5th, 1966.") == (
        "Shipped March 2nd."
    )


def test_last_four_of_a_social_is_redacted_only_when_asked() -> None:
    assert redact("six six one two.", context="And the last four of your social?") == "[SSN]."
    assert redact("six six one two.") == "six six one two."


def test_street_address_is_redacted_unless_the_policy_keeps_it() -> None:
    text = "Send the plumber to four twenty two Oak Lane, Apartment 4B in Fremont."
    assert redact(text) == "Send the plumber to [ADDRESS] in Fremont."
    assert redact(text, PiiPolicy(address="keep")) == text


def test_policy_keeping_addresses_still_redacts_everything_else() -> None:
    text = "I'm at 88 Baker Street, born 2/29/1988, email dana at example dot com."
    assert redact(text, PiiPolicy(address="keep")) == (
        "I'm at 88 Baker Street, born [DOB], email [EMAIL]."
    )


def test_spoken_email_and_bank_details_are_redacted() -> None:
    assert redact("it's j dot smith at gmail dot com") == "it's [EMAIL]"
    text = "Routing 011000015, checking account number 4471 0093 2215."
    assert redact(text) == "Routing [BANK_ACCOUNT], checking account number [BANK_ACCOUNT]."
    # Without bank words an account number is the caller's account with the business.
    assert redact("Your account number 88213094 is set.") == "Your account number 88213094 is set."


def test_uk_mobile_given_to_a_us_agent_is_masked() -> None:
    assert redact("my number is 07911 123456") == "my number is +44••••••3456"
    assert redact("order 0012345678 shipped") == "order 0012345678 shipped"


def test_redact_turns_reads_each_turn_with_the_one_before() -> None:
    turns = ["Can I have your date of birth?", "June second.", "Thanks, booked for June third."]
    assert redact_turns(turns) == [turns[0], "[DOB].", turns[2]]


def test_long_runs_of_single_digits_or_letters_stay_fast() -> None:
    # The card search over digit groups was cubic (minutes for the digits below) and an
    # unbounded spoken e-mail pattern is quadratic; the bound is loose (the machine is shared).
    for text in ("1 " * 5000, "a " * 5000):
        started = time.perf_counter()
        redact(text)
        assert time.perf_counter() - started < 5.0


def test_digits_inside_an_id_are_not_read_as_a_foreign_phone_number() -> None:
    # A hex chunk id holding a national-length run with a leading 0 once came out masked.
    for text in ("chunk 4b0138603162ab ok", "ref INV07700900123", "id 07700900123x"):
        assert redact_text(text).text == text
    assert "900123" not in redact_text("my mobile is 07700 900123").text
