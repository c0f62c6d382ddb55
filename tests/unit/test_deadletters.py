import base64

from cloudevents.core.v1.event import CloudEvent

from storeplatform import deadletters


def letter_event(**extensions):
    return CloudEvent(attributes={"type": "io.storeplatform.store.create", "source": "/t",
                                  "id": "e-1", "subject": "store-a", **extensions},
                      data={"name": "store-a"})


def test_the_record_names_the_failure():
    record = deadletters.record(letter_event(
        knativeerrorcode="500", knativeerrordest="http://create-store",
        knativeerrordata=base64.b64encode(b"first line\nboom").decode()))
    assert (record["id"], record["type"], record["subject"]) == (
        "e-1", "io.storeplatform.store.create", "store-a")
    assert record["error"] == "boom"  # one line: the last one, as for a runner's reason
    assert record["time"].endswith("Z")


def test_an_event_without_knative_error_data_is_undeliverable():
    assert deadletters.record(letter_event())["error"] == "undeliverable"


def test_error_code_and_destination_lead_a_one_line_detail():
    record = deadletters.record(letter_event(
        knativeerrorcode="500", knativeerrordest="http://create-store",
        knativeerrordata=base64.b64encode(b"boom").decode()))
    assert record["error"] == "HTTP 500 from http://create-store boom"


def test_the_kube_event_keeps_the_record_and_reads_back():
    record = deadletters.record(letter_event(knativeerrorcode="503"))
    event = deadletters.kube_event(record, "storeplatform")
    assert event["metadata"]["namespace"] == event["involvedObject"]["namespace"] == (
        "storeplatform")
    assert (event["kind"], event["reason"], event["type"]) == ("Event", "DeadLetter", "Warning")
    assert deadletters.read_back([event]) == [record]


def test_read_back_is_newest_first_and_skips_what_is_not_a_record():
    old = {"id": "1", "time": "2026-01-01T00:00:00Z"}
    new = {"id": "2", "time": "2026-02-01T00:00:00Z"}
    events = [deadletters.kube_event(old, "ns"), {"message": "not json"},
              deadletters.kube_event(new, "ns")]
    assert deadletters.read_back(events) == [new, old]
