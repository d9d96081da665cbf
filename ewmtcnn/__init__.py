"""EW-MTCNN on Emotion6: emotion distribution learning with an emotion-wheel prior."""


class InputError(Exception):
    """Bad input (archive, data table, image or parameter); the message names what and where.

    Stage scripts turn it into one line on stderr and a non-zero exit, without a traceback.
    """
