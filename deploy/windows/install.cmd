@echo off
rem Installs or upgrades the rollcall probe on this Windows endpoint, without
rem questions: for a GPO startup script, an SCCM/Intune package, or by hand
rem from an elevated prompt. Run it from the unpacked zip.
rem
rem   install.cmd /coordinator https://coord.example:7443 /ca ca.pem
rem               /tokenfile token.txt [/label "site=osaka"]... [/hostname NAME]
rem               [/installdir DIR] [/datadir DIR] [/noservice]
rem
rem First install: copies rollcall-agent.exe to INSTALLDIR (default
rem %ProgramFiles%\rollcall), enrolls with the token (read from the file, never
rem put on a command line), writes DATADIR\agent.toml (default
rem %ProgramData%\rollcall) from agent.toml.template, puts the Apex One mapping
rem beside it, registers the service and starts it.
rem Upgrade (DATADIR\agent.toml exists): stops the service, replaces the .exe,
rem starts it again; the enrolment, config and mapping are kept.
rem Exit codes: 0 done, 64 bad arguments, 1 a step failed (the message says which).
setlocal EnableExtensions EnableDelayedExpansion
rem Each step is checked with "if errorlevel" / "if not exist" on its own
rem line, not "cmd || ...": the same meaning in every cmd.exe.

set "HERE=%~dp0"
set "INSTALLDIR=%ProgramFiles%\rollcall"
set "DATADIR=%ProgramData%\rollcall"
set "COORDINATOR="
set "CA="
set "TOKENFILE="
set "EXTRA="
set "SERVICE=1"

:parse
if "%~1"=="" goto parsed
if /i "%~1"=="/coordinator" (set "COORDINATOR=%~2" & shift & shift & goto parse)
if /i "%~1"=="/ca" (set "CA=%~2" & shift & shift & goto parse)
if /i "%~1"=="/tokenfile" (set "TOKENFILE=%~2" & shift & shift & goto parse)
if /i "%~1"=="/label" goto label
if /i "%~1"=="/hostname" (set "EXTRA=!EXTRA! --hostname %~2" & shift & shift & goto parse)
if /i "%~1"=="/installdir" (set "INSTALLDIR=%~2" & shift & shift & goto parse)
if /i "%~1"=="/datadir" (set "DATADIR=%~2" & shift & shift & goto parse)
if /i "%~1"=="/noservice" (set "SERVICE=0" & shift & goto parse)
echo install.cmd: unknown argument %1 1>&2
exit /b 64

rem cmd splits arguments at "=", so a label must be quoted: /label "site=osaka".
:label
set "LABEL=%~2"
set "LABELVALUE="
for /f "tokens=1,* delims==" %%a in ("%~2") do set "LABELVALUE=%%b"
if not defined LABELVALUE (echo install.cmd: /label needs a quoted key=value, e.g. /label "site=osaka" 1>&2 & exit /b 64)
set "EXTRA=!EXTRA! --label "!LABEL!""
shift & shift & goto parse
:parsed

set "EXE=%INSTALLDIR%\rollcall-agent.exe"
set "CONFIG=%DATADIR%\agent.toml"

if exist "%CONFIG%" goto upgrade

if "%COORDINATOR%"=="" (echo install.cmd: /coordinator is required for a first install 1>&2 & exit /b 64)
if "%CA%"=="" (echo install.cmd: /ca is required for a first install 1>&2 & exit /b 64)
if "%TOKENFILE%"=="" (echo install.cmd: /tokenfile is required for a first install 1>&2 & exit /b 64)

call :copy_exe
if errorlevel 1 exit /b 1
rem The mapping first: enroll checks nothing in it, but the agent reads it
rem from its first run on. An admin-confirmed mapping already there is kept.
rem Before anything is written there: the data dir is created, or one that
rem exists (made by anyone beforehand) reset, for SYSTEM and Administrators
rem only, inheritance removed, owner Administrators (docs/SECURITY.md).
call :secure_data_dir
if errorlevel 1 exit /b 1
if not exist "%DATADIR%\apex-one.toml" copy /y "%HERE%apex-one.toml" "%DATADIR%\apex-one.toml" >nul
"%EXE%" enroll --coordinator "%COORDINATOR%" --ca "%CA%" --token-file "%TOKENFILE%" --data-dir "%DATADIR%" --template "%HERE%agent.toml.template" %EXTRA%
if errorlevel 1 (echo install.cmd: enrolment failed 1>&2 & exit /b 1)
if "%SERVICE%"=="0" goto done
"%EXE%" service install --config "%CONFIG%"
if errorlevel 1 (echo install.cmd: service install failed 1>&2 & exit /b 1)
"%EXE%" service start
if errorlevel 1 (echo install.cmd: service start failed 1>&2 & exit /b 1)
goto done

:upgrade
echo install.cmd: %CONFIG% exists: upgrading the program, keeping the enrolment
if "%SERVICE%"=="1" if exist "%EXE%" "%EXE%" service stop
call :copy_exe
if errorlevel 1 exit /b 1
call :secure_data_dir
if errorlevel 1 exit /b 1
"%EXE%" validate --config "%CONFIG%"
if errorlevel 1 (echo install.cmd: the kept config does not validate 1>&2 & exit /b 1)
if "%SERVICE%"=="0" goto done
"%EXE%" service start
if errorlevel 1 (echo install.cmd: service start failed 1>&2 & exit /b 1)

:done
echo install.cmd: done
exit /b 0

:secure_data_dir
"%EXE%" secure-data-dir --data-dir "%DATADIR%"
if errorlevel 1 (echo install.cmd: cannot create or secure %DATADIR% 1>&2 & exit /b 1)
exit /b 0

:copy_exe
if not exist "%INSTALLDIR%\" mkdir "%INSTALLDIR%"
if not exist "%INSTALLDIR%\" (echo install.cmd: cannot create %INSTALLDIR% 1>&2 & exit /b 1)
copy /y "%HERE%rollcall-agent.exe" "%EXE%" >nul
if errorlevel 1 (echo install.cmd: cannot copy rollcall-agent.exe to %INSTALLDIR% 1>&2 & exit /b 1)
exit /b 0
