"""Helpers every python-backend model of the repository shares (copied beside each ``model.py``).

The dynamic batcher hands ``execute`` several requests at once; the models stack their inputs, run once on
the batch and cut the results back into one response per request.
"""

from pathlib import Path

import triton_python_backend_utils as pb_utils


def request_arrays(requests, name):
    """Return input ``name`` of every request as numpy arrays, in request order."""
    return [pb_utils.get_input_tensor_by_name(r, name).as_numpy() for r in requests]


def split_responses(sizes, outputs):
    """Return one ``InferenceResponse`` per request: the next ``sizes[i]`` rows of every ``(name, array)``."""
    responses, row = [], 0
    for n in sizes:
        tensors = [pb_utils.Tensor(name, value[row:row + n]) for name, value in outputs]
        responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        row += n
    return responses


def open_admission(args, config):
    """Return the step's admission table (``sessrec_admission.AdmissionTable``), None when the config sets no limit.

    The table is shared by the steps of this repository on this server.
    """
    params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
    slots = int(params.get("admission_max_in_flight", "0"))
    if slots <= 0:
        return None
    from sessrec_admission import AdmissionTable, remove_stale_tables, table_path

    remove_stale_tables()
    repository = Path(args["model_repository"]).resolve().parent
    return AdmissionTable(table_path(repository), slots, float(params["admission_lease_ms"]))


def rejected_response(max_in_flight):
    """The answer to a request the admission limit turned away: UNAVAILABLE, so a client backs off and retries."""
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(
        f"admission limit: {max_in_flight} requests already in flight (max_in_flight={max_in_flight}); "
        "request rejected, retry later", pb_utils.TritonError.UNAVAILABLE))
