"""Tasks: train/test data with the meta data that produced it, for both sides of a study.

``make_task(name, seed=..., **params)`` returns a :class:`Task`; ``TASKS`` maps each name to its
parameter class, whose docstring states the data model and the paper it comes from. Synthetic
tasks: teacher_student, linear_regression, single_index, sparse_parity, gaussian_mixture. Real,
offline data: digits, breast_cancer (scikit-learn's bundled sets) and mnist1d (generated).
Importing this package does not import torch, scikit-learn or mnist1d; the tasks that need them
do, on first use.
"""

from genlab.tasks._real import BreastCancerParams, DigitsParams, MNIST1DParams
from genlab.tasks._registry import TASKS, make_task, task_names, task_params
from genlab.tasks._synthetic import (
    GaussianMixtureParams,
    LinearRegressionParams,
    SingleIndexParams,
    SparseParityParams,
    TeacherStudentParams,
)
from genlab.tasks._task import Task, TaskError, TaskParams

__all__ = [
    "TASKS",
    "BreastCancerParams",
    "DigitsParams",
    "GaussianMixtureParams",
    "LinearRegressionParams",
    "MNIST1DParams",
    "SingleIndexParams",
    "SparseParityParams",
    "Task",
    "TaskError",
    "TaskParams",
    "TeacherStudentParams",
    "make_task",
    "task_names",
    "task_params",
]
