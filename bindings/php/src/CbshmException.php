<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

/**
 * A libcbshm call failed. getCode() is the C code (CBSHM_ENOSEG is
 * -30801; a system error is -errno), $errname its symbolic name
 * ("CBSHM_ENOSEG", "ENOENT"), $what what the call was about ("segment
 * /cbshm"); the message is "WHAT: TEXT", TEXT the library's
 * cbshm_strerror() unless the binding says more.
 */
class CbshmException extends \RuntimeException
{
    public readonly string $errname;
    public readonly string $what;

    public function __construct(int $code, string $what = '', ?string $text = null,
                                ?\Throwable $previous = null)
    {
        $this->what = $what;
        $this->errname = Native::errname($code);
        $text ??= Native::strerror($code);
        parent::__construct($what !== '' ? "$what: $text" : $text, $code, $previous);
    }
}
