"""Helpers of every python-backend model (copied beside each ``model.py``): the dynamic batcher hands ``execute``
several requests at once; a model stacks their inputs, runs once and cuts the results back per request."""

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
